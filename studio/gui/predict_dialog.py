"""Predict from the Runs dock: score the stocks of some dates with a finished run (studio.train.predict, the
core of ``studio predict``), on a worker thread; show the scores in a table with the notes in full, or write
them to a .csv, .parquet or Qlib pred.pkl file."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core.text import error_line, printable
from studio.gui.background_task import BackgroundTask, TaskDialog


class FrameModel(QAbstractTableModel):
    """A pandas frame of scores as a read-only table (a range of dates over a large universe is many rows:
    a model, not a cell widget per value)."""

    DIGITS: ClassVar[dict[str, str]] = {"score": "{:+.6f}", "label": "{:+.5f}", "ic": "{:+.4f}"}

    def __init__(self, frame) -> None:
        super().__init__()
        self.frame = frame
        self.columns = list(frame.columns)
        self.values = [frame[c].to_numpy() for c in self.columns]

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.frame)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def text(self, row: int, column: int) -> str:
        name, value = self.columns[column], self.values[column][row]
        if name == "date":
            return str(np.datetime64(value, "D"))
        if isinstance(value, float | np.floating):
            return "-" if value != value else self.DIGITS.get(name, "{:.6g}").format(value)
        return printable(str(value))

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(index.row(), index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole and self.columns[index.column()] not in ("date", "symbol"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section]
        return None


DATE_CHOICES = ("last date", "one date", "a range")


class PredictDialog(TaskDialog):
    """Data (the run's own, or other bars read with its import settings), dates (the last, one or a range,
    listed from the data once read) and an output file, or none: the scores in the table below."""

    def __init__(self, run_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.setWindowTitle(f"Predict with {printable(self.run_dir.name)}")
        #: bars other than the run's own (a path read with its import settings); None: the run's
        self.data: str | None = None
        self.kind, recorded = _recorded(self.run_dir)
        #: the dates of the data as last read (datetime64[D]); None until read
        self.dates: np.ndarray | None = None
        self.result = None
        self.dates_task: BackgroundTask | None = None
        self.task: BackgroundTask | None = None
        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)
        data_row = self._data_row(recorded)
        form.addRow("data", data_row)
        date_row = self._date_row()
        form.addRow("dates", date_row)
        self.dates_note = QLabel("")
        self.dates_note.setTextFormat(Qt.TextFormat.PlainText)
        self.dates_note.setWordWrap(True)
        form.addRow("", self.dates_note)
        out_row = QHBoxLayout()
        self.output = QLineEdit()
        self.output.setPlaceholderText("none: the scores show below (or a .csv, .parquet or Qlib pred.pkl file)")
        save_as = QPushButton("Save as…")
        save_as.setAutoDefault(False)
        save_as.clicked.connect(self.choose_output)
        out_row.addWidget(self.output, 1)
        out_row.addWidget(save_as)
        form.addRow("output", out_row)
        buttons = QHBoxLayout()
        self.predict_button = QPushButton("Predict")
        self.predict_button.setDefault(True)
        self.predict_button.clicked.connect(self.start)
        self.status = QLabel("")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QPushButton("Close")
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self.close)
        buttons.addWidget(self.predict_button)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.close_button)
        outer.addLayout(buttons)
        self.table = QTableView()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        # what predict left out, with counts, in full (a label would cut a long note)
        self.notes = QPlainTextEdit()
        self.notes.setReadOnly(True)
        self.notes.setPlaceholderText("notes: dates, symbols and stocks left out, with counts")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.notes)
        split.setSizes([400, 130])
        outer.addWidget(split, 1)
        window = parent.window() if parent is not None else None
        room = window.size() if window is not None and window.isVisible() else None
        self.resize(min(900, int(room.width() * 0.9)) if room else 900,
                    min(720, int(room.height() * 0.9)) if room else 720)
        self._show_date_choice()
        self.read_dates()

    # ---- data and dates -------------------------------------------------------------------------
    def _data_row(self, recorded: str) -> QHBoxLayout:
        """The data the run predicts on (its own, shown in one line) and the buttons that choose other bars."""
        data_row = QHBoxLayout()
        self.source = QLabel(printable(recorded))
        self.source.setTextFormat(Qt.TextFormat.PlainText)  # a path is text, never markup
        self.source.setToolTip("the bars the run trained on, read with its import settings")
        self.source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        data_row.addWidget(self.source, 1)
        self.other_button = QPushButton("Other data…")
        self.other_button.setAutoDefault(False)
        #: a file or a folder of bars (an imported run); a Qlib run's data is always a folder
        self.other_menu = QMenu(self)
        self.other_menu.addAction("File…", lambda: self.choose_other_data("file"))
        self.other_menu.addAction("Folder…", lambda: self.choose_other_data("folder"))
        if self.kind == "qlib":
            self.other_button.clicked.connect(lambda: self.choose_other_data("qlib"))
        else:
            self.other_button.setMenu(self.other_menu)
        if self.kind == "synthetic":
            self.other_button.setEnabled(False)
            self.other_button.setToolTip("the run trained on the synthetic market, which reads no files")
        else:
            self.other_button.setToolTip("bars of the same kind (new days, another folder), read with the run's "
                                         "import settings")
        self.own_button = QPushButton("Run's data")
        self.own_button.setAutoDefault(False)
        self.own_button.setToolTip("back to the data the run trained on")
        self.own_button.clicked.connect(lambda: self.use_data(None))
        self.own_button.setVisible(False)
        data_row.addWidget(self.other_button)
        data_row.addWidget(self.own_button)
        return data_row

    def _date_row(self) -> QHBoxLayout:
        """Last date, one date or a range, the dates listed from the data once read."""
        date_row = QHBoxLayout()
        self.date_kind = QComboBox()
        self.date_kind.addItems(DATE_CHOICES)
        self.date_kind.setToolTip("last date: the data's newest day (it needs no label: today has none)")
        self.first, self.last = QComboBox(), QComboBox()
        self.first.setToolTip("the date (a range: its first date)")
        self.last.setToolTip("the range's last date (both ends included)")
        self.until = QLabel("..")
        for widget in (self.date_kind, self.first, self.until, self.last):
            date_row.addWidget(widget)
        date_row.addStretch(1)
        self.date_kind.currentIndexChanged.connect(lambda _i: self._show_date_choice())
        return date_row

    def choose_other_data(self, what: str) -> None:
        """A file or folder of bars (``what``: file, folder), or a Qlib folder (qlib), read with the run's
        settings: the pickers of the training panel's import and Qlib dialogs."""
        if what == "file":
            path = QFileDialog.getOpenFileName(self, "Bars file", "", "Bars (*.csv *.csv.gz *.parquet *.pq)")[0]
        else:
            path = QFileDialog.getExistingDirectory(self, "Qlib data folder" if what == "qlib" else "Folder of bars")
        if path:
            self.use_data(path)

    def use_data(self, path: str | None) -> None:
        """Predict from ``path`` (None: the run's own data); its dates are read again."""
        self.data = path
        self.own_button.setVisible(path is not None)
        self.source.setText(printable(path) if path is not None else printable(_recorded(self.run_dir)[1]))
        self.read_dates()

    def read_dates(self) -> None:
        from studio.train.predict import PredictError, data_dates

        if self.dates_task is not None:
            self.dates_task.stop()  # its answer is for data no longer chosen: dropped when it comes
        self.dates = None
        for combo in (self.first, self.last):
            combo.clear()
        self.dates_note.setStyleSheet("")
        self.dates_note.setText("Reading the data's dates…")
        self._show_date_choice()
        run_dir, data = self.run_dir, self.data
        task = BackgroundTask(lambda _cancel: data_dates(run_dir, data), (PredictError,))
        task.succeeded.connect(lambda found, t=task: self._dates_read(t, found))
        task.failed.connect(lambda line, t=task: self._dates_failed(t, line))
        self.dates_task = task
        task.start()

    def _dates_read(self, task: BackgroundTask, found) -> None:
        if task is not self.dates_task or task.cancel.is_set():
            return
        source, dates = found
        self.dates = dates
        texts = [str(d) for d in dates]
        for combo in (self.first, self.last):
            combo.addItems(texts)
        self.first.setCurrentIndex(max(0, len(texts) - 1))
        self.last.setCurrentIndex(max(0, len(texts) - 1))
        self.dates_note.setText(f"{len(texts)} dates, {texts[0]} .. {texts[-1]}" if texts else "the data has no dates")
        self.source.setToolTip(printable(source))
        self._show_date_choice()

    def _dates_failed(self, task: BackgroundTask, line: str) -> None:
        if task is not self.dates_task or task.cancel.is_set():
            return
        self.dates_note.setStyleSheet("color: #e05252")
        self.dates_note.setText(f"Cannot read the data's dates: {line}")
        self._show_date_choice()

    def _show_date_choice(self) -> None:
        kind = self.date_kind.currentIndex()
        listed = self.dates is not None and len(self.dates) > 0
        self.first.setVisible(kind > 0)
        self.until.setVisible(kind == 2)
        self.last.setVisible(kind == 2)
        self.first.setEnabled(listed)
        self.last.setEnabled(listed)

    def dates_text(self) -> str:
        """The dates as ``studio predict --dates`` takes them."""
        kind = self.date_kind.currentIndex()
        if kind == 0:
            return "last"
        if kind == 1:
            return self.first.currentText()
        return f"{self.first.currentText()}..{self.last.currentText()}"

    def choose_output(self) -> None:
        start = self.output.text().strip() or str(Path.cwd() / "scores.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Scores file", start,
                                              "CSV (*.csv);;Parquet (*.parquet);;Qlib pred.pkl (*.pkl)")
        if path:
            self.output.setText(path)

    # ---- the prediction -----------------------------------------------------------------------------
    def start(self) -> bool:
        """Predict on a worker thread; False (and why, in the status line) when it cannot start."""
        from studio.train.predict import OUTPUT_SUFFIXES, PredictError, predict, write_scores

        if self.task is not None and self.task.isRunning():
            return False
        if self.date_kind.currentIndex() > 0 and self.dates is None:
            return self._refuse("the data's dates are not read yet: choose the last date, or wait for the list")
        out = self.output.text().strip()
        if out and Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
            return self._refuse(f"{printable(out)}: the output must end in .csv, .parquet or .pkl (or be empty)")
        run_dir, data, dates = self.run_dir, self.data, self.dates_text()

        def work(cancel):
            result = predict(run_dir, data, dates, cancel=cancel)
            if out:
                write_scores(result.frame, out)
            return result

        task = BackgroundTask(work, (PredictError, OSError))
        task.succeeded.connect(lambda result, t=task: self._predicted(t, result, out))
        task.failed.connect(lambda line, t=task: self._failed(t, line))
        self.task = task
        self.predict_button.setEnabled(False)
        self.status.setStyleSheet("")
        self.status.setText(f"Predicting {dates}…")
        task.start()
        return True

    def _predicted(self, task: BackgroundTask, result, out: str) -> None:
        if not self.current(task):
            return  # closed meanwhile: nobody is waiting for it
        self.predict_button.setEnabled(True)
        self.result = result
        frame = result.frame
        days = frame["date"].drop_duplicates()
        span = str(days.iloc[0].date()) + (f" .. {days.iloc[-1].date()}" if len(days) > 1 else "")
        self.status.setStyleSheet("")
        self.status.setText(f"{len(frame)} scores of {len(days)} date(s), {span}"
                            + (f"; wrote {printable(out)}" if out else ""))
        self.table.setModel(FrameModel(frame))
        self.table.resizeColumnsToContents()
        self.notes.setPlainText("\n".join([f"data: {printable(result.source)}",
                                           *(f"note: {printable(n)}" for n in result.notes)]))

    def _failed(self, task: BackgroundTask, line: str) -> None:
        self._task_failed(task, self.predict_button, "predict", line)

    def tasks(self) -> list[BackgroundTask | None]:
        return [self.task, self.dates_task]

    def running(self) -> bool:
        return any(t is not None and t.isRunning() for t in self.tasks())


def _recorded(run_dir: Path) -> tuple[str, str]:
    """(kind, one line) of the data a run's config.json records; ("", why) when it cannot be read."""
    from studio.core.owned_dir import read_json
    from studio.train.engine import recorded_source

    try:
        source = recorded_source(read_json(run_dir / "config.json"))
        return source.kind, source.describe()
    except Exception as exc:  # a damaged config.json: predict itself says so in one line
        return "", f"the run's data cannot be read from its config.json ({error_line(exc)})"
