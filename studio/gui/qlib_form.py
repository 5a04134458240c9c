"""The studio's form for a Qlib data folder (studio.train.data_sources.QLIB): a dialog that picks the folder,
its frequency and market (from the folder's calendars/ and instruments/), and how prices are given, reads
the bars and shows what the import made of them; the data form shows the choice in one line."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from studio.core.text import printable
from studio.gui.panel_text import panel_report, panel_summary


def _names(folder: Path) -> list[str]:
    """The .txt files' names of ``folder``: a calendar per frequency, a market per file."""
    try:
        return sorted(p.stem for p in folder.glob("*.txt") if p.is_file() and not p.stem.endswith("_future"))
    except OSError:
        return []


class QlibDialog(QDialog):
    """A Qlib data folder and how to read it. Read loads the bars and shows sizes, notes and counts; OK reads
    them first when that has not been done, and stays open when they cannot be read."""

    def __init__(self, parent=None, settings: dict | None = None, path: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Qlib data folder")
        settings = settings or {}
        self.described: dict | None = None
        self._described_for: tuple | None = None
        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)
        row = QHBoxLayout()
        self.path = QLineEdit(path)
        self.path.setPlaceholderText("a folder with calendars/, instruments/ and features/")
        browse = QPushButton("Folder…")
        browse.setAutoDefault(False)  # Enter in the dialog means OK, not another folder
        browse.clicked.connect(self._pick_folder)
        self.path.editingFinished.connect(self._fill_choices)
        row.addWidget(self.path)
        row.addWidget(browse)
        form.addRow("folder", row)
        self.freq, self.market, self.prices = QComboBox(), QComboBox(), QComboBox()
        for combo in (self.freq, self.market):
            combo.setEditable(True)  # a market may also be a .txt file of its own
        self.freq.setToolTip("the calendar read: calendars/FREQ.txt (day, 1min, 5min, ...)")
        self.market.setToolTip("the instruments: instruments/NAME.txt (all, csi300, ...) or a .txt file's path")
        self.prices.addItems(["adjusted", "raw"])
        self.prices.setToolTip("adjusted: as Qlib stores them; raw: Qlib's adjustment undone (close / factor, "
                               "volume x factor)")
        self.prices.setCurrentText(settings.get("prices", "adjusted"))
        form.addRow("frequency", self.freq)
        form.addRow("market", self.market)
        form.addRow("prices", self.prices)
        self._fill_choices(settings.get("freq", "day"), settings.get("market", "all"))
        read = QPushButton("Read")
        read.setAutoDefault(False)
        read.clicked.connect(self.inspect)
        outer.addWidget(read, 0, Qt.AlignmentFlag.AlignLeft)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        outer.addWidget(self.summary)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        outer.addWidget(self.report, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        self.resize(720, 620)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Qlib data folder")
        if path:
            self.path.setText(path)
            self._fill_choices()

    def _fill_choices(self, freq: str | None = None, market: str | None = None) -> None:
        """The folder's frequencies and markets in the lists: what was chosen stays chosen when the folder has
        it (or it is typed: a market file of its own), else the folder's first."""
        root = Path(self.path.text().strip() or ".")
        for combo, folder, current in ((self.freq, root / "calendars", freq or self.freq.currentText()),
                                       (self.market, root / "instruments", market or self.market.currentText())):
            names, current = _names(folder), current.strip()
            if names and current not in names and not current.lower().endswith(".txt"):
                current = names[0]
            combo.clear()
            combo.addItems(names or [current])
            combo.setCurrentText(current)

    def settings(self) -> dict:
        return {"freq": self.freq.currentText().strip(), "market": self.market.currentText().strip(),
                "prices": self.prices.currentText()}

    def _key(self) -> tuple:
        return self.path.text().strip(), tuple(sorted(self.settings().items()))

    def inspect(self) -> bool:
        """Read the bars; show sizes, notes and counts (or why they cannot be read)."""
        from studio.core.text import error_line
        from studio.data.errors import DataError
        from studio.data.qlib_folder import qlib_panel

        self.described, self._described_for = None, None
        try:
            panel = qlib_panel(self.path.text().strip(), self.settings())
        except (DataError, OSError, ValueError) as exc:
            self.summary.setText(f"Cannot read this folder: {error_line(exc)}")
            self.summary.setStyleSheet("color: #e05252")
            self.report.setPlainText(error_line(exc, limit=5000))
            return False
        d = panel.describe()
        self.described, self._described_for = d, self._key()
        self.summary.setStyleSheet("")
        self.summary.setText(panel_summary(d, "instruments"))
        self.report.setPlainText(panel_report(d))
        return True

    def accept(self) -> None:
        stale = self.described is None or self._described_for != self._key()
        if stale and not self.inspect():
            return  # the reason shows above; nothing unreadable reaches the panel
        super().accept()


class QlibForm:
    """A Qlib data folder in the data form: chosen through QlibDialog, shown as one line."""

    def __init__(self, panel, source, rows: QFormLayout) -> None:
        self.panel, self.source = panel, source
        self.path, self.settings = "", {}
        #: panel.describe() of the folder's bars (from the dialog), for the fit check
        self.bars: dict | None = None
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.rows = rows
        rows.addRow(self.label)
        rows.setRowVisible(self.label, False)  # no empty line in the data form while another source is chosen

    def choose(self) -> bool:
        """Open the dialog; False when it ends with no bars to train on."""
        dialog = QlibDialog(self.panel, self.settings, self.path)
        if dialog.exec():
            self.use(dialog.path.text().strip(), dialog.settings(), dialog.described)
        return bool(self.path)

    def use(self, path: str, settings: dict, described: dict | None) -> None:
        self.path, self.settings, self.bars = path, dict(settings), described

    def show_chosen(self, chosen: bool) -> None:
        text = ""
        if chosen:
            s = self.settings
            text = f"Qlib: {Path(self.path).name or self.path} ({s.get('freq')}, {s.get('market')}, {s.get('prices')})"
            d = self.bars
            if d:
                text += (f": {d['symbols']} instruments, {d['dates']} dates, {d['bars_per_day']} bars a day; "
                         f"{', '.join(d['features'])}")
            text = printable(text)
            self.label.setToolTip(printable(self.path))
        self.label.setText(text)
        self.rows.setRowVisible(self.label, bool(text))

    def described(self) -> dict | None:
        return self.bars

    def spec(self):
        from studio.train.config import SourceSpec

        return SourceSpec.of(self.source.kind, self.path, self.settings) if self.path else None
